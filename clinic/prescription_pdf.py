"""The printable prescription as a PDF, drawn with fpdf2 (pure Python; its core fonts are built in, so it
fetches nothing). The same context as the print page (clinic/views_titration._print_context).

One A4 page whose 15 mm margins also fit US Letter (216 x 279 mm): the text block is 180 mm wide and ends
well above 264 mm, so it prints on either paper without scaling.
"""

from fpdf import FPDF
from fpdf.enums import XPos, YPos

_PLAIN = str.maketrans({"→": "->", "–": "-", "—": "-", "×": "x", "µ": "u", "‘": "'", "’": "'", "“": '"', "”": '"'})
WIDTH = 180  # mm of text per line: A4 210 - 2 x 15, inside Letter's 216


def _latin(text) -> str:
    """The core PDF fonts are Latin-1: anything else becomes a plain look-alike or '?'."""
    return str(text or "").translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


class _Sheet(FPDF):
    def heading(self, text: str) -> None:
        self.ln(2)
        self.set_font("helvetica", "B", 11)
        self.cell(WIDTH, 6, _latin(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT, border="B")
        self.ln(1)

    def row(self, label: str, value) -> None:
        self.set_font("helvetica", "B", 10)
        self.cell(45, 5.5, _latin(label))
        self.set_font("helvetica", "", 10)
        self.multi_cell(WIDTH - 45, 5.5, _latin(value) or "-", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def render(ctx: dict) -> bytes:
    rx, patient, pharmacy, clinic = ctx["rx"], ctx["patient"], ctx["pharmacy"], ctx["clinic"]
    pdf = _Sheet(orientation="portrait", unit="mm", format="A4")
    pdf.set_margins(15, 15, 15)
    pdf.set_auto_page_break(True, margin=15)
    pdf.set_title(_latin(f"Prescription {rx.pk}"))
    pdf.set_creator("ldnclinic")
    pdf.add_page()

    if ctx["draft"]:  # behind the text: a draft is never mistaken for a valid prescription
        pdf.set_text_color(225, 190, 190)
        pdf.set_font("helvetica", "B", 54)
        with pdf.rotation(35, x=105, y=150):
            pdf.text(22, 165, "DRAFT - not valid")
        pdf.set_text_color(0, 0, 0)

    pdf.set_font("helvetica", "B", 15)
    title = "Prescription: compounded low-dose naltrexone (LDN)"
    pdf.cell(WIDTH, 8, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("helvetica", "", 10)
    pdf.cell(
        WIDTH,
        5,
        _latin(f"{clinic.name}  {clinic.phone}  {clinic.email}".strip()),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    if ctx["draft"]:
        pdf.set_font("helvetica", "B", 11)
        pdf.set_text_color(164, 14, 38)
        pdf.cell(WIDTH, 6, "DRAFT - not valid: not activated, do not dispense.", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0)

    pdf.heading("Patient")
    pdf.row("Name", patient.full_name)
    pdf.row("Date of birth", f"{patient.date_of_birth:%d %b %Y}")
    pdf.row("Address", patient.address or "not recorded")

    pdf.heading("Medicine")
    pdf.row("Medicine", "Naltrexone (low dose), compounded")
    pdf.row("Formulation", rx.get_form_display())
    pdf.row("Strength", ctx["strength"])
    pdf.row("Release", rx.get_release_display())
    pdf.row("Filler", ctx["filler"])
    pdf.row("Quantity", ctx["quantity"])
    pdf.row("Days supply", f"{rx.days_supply} days")
    pdf.row("Directions (sig)", rx.sig)
    pdf.row("Refills", rx.refills)
    pdf.row("Written on", f"{rx.written_on:%d %b %Y}")
    if rx.start_on:
        pdf.row("Start on", f"{rx.start_on:%d %b %Y}")

    pdf.heading("Compounding pharmacy")
    pdf.row("Pharmacy", pharmacy.name)
    pdf.row("Address", pharmacy.address)
    pdf.row("Phone", pharmacy.phone)
    pdf.row("Fax", pharmacy.fax)

    pdf.heading("Prescriber")
    credential = ctx["credential"]
    pdf.row("Name", f"{ctx['prescriber_name']}, {credential.credentials}" if credential else ctx["prescriber_name"])
    pdf.row("Licence numbers", "\n".join(ctx["licences"]) or "not on file")
    pdf.ln(14)
    pdf.set_font("helvetica", "", 10)
    pdf.cell(110, 5, "Signature: ______________________________________")
    pdf.cell(70, 5, "Date: ________________", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_font("helvetica", "I", 8)
    pdf.multi_cell(
        WIDTH,
        4,
        _latin(f"Prescription {rx.pk}, status {rx.get_status_display().lower()}. Immediate release only (RX-1)."),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    return bytes(pdf.output())
