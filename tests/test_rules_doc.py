"""docs/rules.md, the clinical rules page, stays true to the code: every rule id is there, every module,
function and constant it points to exists, and neither it nor the README links outside the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "docs" / "rules.md"
RULE_IDS = (
    ["DOSE-1", "DOSE-2", "1.3"]
    + [f"SE-{n}" for n in range(1, 6)]
    + ["EFF-1", "EFF-2"]
    + [f"RX-{n}" for n in range(1, 4)]
    + [f"OPI-{n}" for n in range(1, 5)]
    + [f"OPI-W{n}" for n in range(1, 4)]
    + [f"PRO-{n}" for n in range(1, 4)]
    + ["BASE-1"]
    + [f"RESP-{n}" for n in range(1, 8)]
    + ["LAB-1", "LAB-2"]
    + [f"REM-{n}" for n in range(1, 6)]
)
PATH = re.compile(r"^[\w/]+\.(py|json)$")
NAME = re.compile(r"^[A-Za-z_][\w.]*$")


def test_every_rule_has_its_own_entry():
    text = RULES.read_text()
    missing = [rule for rule in RULE_IDS if f"**{rule}:" not in text]
    assert not missing, f"no entry for {missing} in docs/rules.md"


def test_every_file_function_and_constant_it_names_exists():
    """Each `name` after a `path/file.py` on the page is a function, class, constant or key of that file."""
    checked = 0
    current = None
    for token in re.findall(r"`([^`\n]+)`", RULES.read_text()):
        if PATH.match(token):
            current = ROOT / token
            assert current.is_file(), f"docs/rules.md names {token}, which does not exist"
            checked += 1
        elif current is not None and NAME.match(token):
            last = token.split(".")[-1]
            assert re.search(rf"\b{re.escape(last)}\b", current.read_text()), f"{token} is not in {current.name}"
            checked += 1
    assert checked > 100


def test_the_rules_page_and_the_readme_link_nothing_outside_the_repository():
    rules = RULES.read_text()
    assert "http" not in rules and "://" not in rules and "../" not in rules
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme and "shared/domain.md" not in readme
    assert "](docs/rules.md)" in readme
