"""The timeline's one statement: every source's rows in a window, newest first, at most ``limit`` each.

A window's timeline comes from a dozen tables (the history of nine models, the safety gate's events,
check-ins with their side effects, reminders). Read one query each, the ORM's building of a dozen
statements cost more than the database's answering them; here they are one UNION ALL, built once per
process from the models' table and column names, the patient, the window and the limit as parameters.

Each branch gives the same columns: (src, id, at, type, why, user_id, c, p, x), ``c``, ``p`` and ``x``
being JSON objects (``jsonb`` on PostgreSQL, text on SQLite) that ``clinic.chart_timeline`` reads back:
- a history branch (src = its index in ``SOURCES``): ``type`` is simple-history's +, ~ or -, ``c`` the
  version's tracked fields, ``p`` the version before it (LAG over the object's versions, so the previous
  one may lie before the window), ``x`` the columns the title reads; saves that changed nothing shown are
  left out here (the nightly opioid sweep re-saves open flags);
- the safety gate (``GATE``): ``c`` its action, outcome and summary;
- check-ins (``CHECKINS``): ``c`` the answers, ``p`` the side effects as a JSON array;
- reminders (``REMINDERS``): sent ones by their sending time, failed and cancelled ones by their last
  change, ``c`` what the row says;
- and last, one row whose ``at`` is the patient's first check-in (how far back older windows go).
"""

from functools import cache

from patients.flag_models import SafetyGateEvent
from patients.models import User
from symptoms.models import SideEffectReport, SymptomCheckIn
from titration.reminder_models import Reminder, ReminderStatus

GATE, CHECKINS, REMINDERS = "gate", "checkins", "reminders"
CHECKIN_FIELDS = ("pain", "fatigue", "sleep_quality", "mood", "took_dose_as_prescribed", "nights_missed", "opioid_use")
SIDE_EFFECT_FIELDS = ("effect", "severity", "description", "started_on")
REMINDER_FIELDS = ("kind", "channel", "local_date", "status", "subject", "attempts", "last_error", "cancelled_reason")


class _Sql:
    def __init__(self, vendor: str):
        postgres = vendor == "postgresql"
        self.build = "jsonb_build_object" if postgres else "json_object"
        self.none = "CAST(NULL AS jsonb)" if postgres else "NULL"
        self.array = "jsonb_agg" if postgres else "json_group_array"
        # Typed NULLs: PostgreSQL types a bare NULL in a derived table as text, which a UNION cannot match.
        self.no_id = "CAST(NULL AS bigint)" if postgres else "NULL"
        self.no_text = "CAST(NULL AS text)"

    def obj(self, model, names, alias: str) -> str:
        if not names:
            return self.none
        pairs = (f"'{name}', {alias}.{model._meta.get_field(name).column}" for name in names)
        return f"{self.build}({', '.join(pairs)})"


def _window(column: str, bounded: bool) -> str:
    return f"{column} >= %s" + (f" AND {column} < %s" if bounded else "")


def _limited(index: int, columns: str, rest: str, order: str) -> str:
    """A branch: its newest rows up to the limit, numbered in its own order (``pos``), so that rows saved
    in the same instant keep the order they had when each source was read on its own."""
    return (
        f"SELECT * FROM (SELECT {index} AS src, {columns}, ROW_NUMBER() OVER (ORDER BY {order}) AS pos"  # noqa: S608
        f" {rest} ORDER BY {order} LIMIT %s) s{index}"
    )


@cache
def timeline_sql(vendor: str, bounded: bool, sources: tuple) -> tuple[str, tuple[str, ...]]:
    """The statement and, in order, what each branch's parameters are: "patient", "since", "until",
    "limit" (``timeline_params`` fills them)."""
    sql = _Sql(vendor)
    parts, params = [], []
    window = ["patient", "since", *(["until"] if bounded else []), "limit"]
    for index, source in enumerate(sources):
        history = source.model.history.model
        tracked = sql.obj(history, source.fields, "h")
        parts.append(
            _limited(
                index,
                "v.history_id AS id, v.history_date AS at, v.history_type AS type, v.history_change_reason AS why,"
                " v.history_user_id AS user_id, v.c, v.p, v.x",
                "FROM (SELECT h.history_id, h.history_date, h.history_type, h.history_change_reason,"  # noqa: S608
                f" h.history_user_id, {tracked} AS c, LAG({tracked}) OVER w AS p,"
                f" {sql.obj(history, source.extra, 'h')} AS x FROM {history._meta.db_table} h WHERE {source.lookup}"
                " WINDOW w AS (PARTITION BY h.id ORDER BY h.history_date, h.history_id)) v"
                f" WHERE {_window('v.history_date', bounded)} AND (v.history_type <> '~'"
                " OR COALESCE(v.history_change_reason, '') <> '' OR v.p IS NULL OR v.c <> v.p)",
                "v.history_date DESC, v.history_id DESC",
            )
        )
        params += window
    gate, checkin, effect, reminder = (
        m._meta.db_table for m in (SafetyGateEvent, SymptomCheckIn, SideEffectReport, Reminder)
    )
    index = len(sources)
    parts.append(
        _limited(
            index,
            f"g.id, g.created_at AS at, {sql.no_text} AS type, g.reason AS why, g.actor_id AS user_id,"
            f" {sql.obj(SafetyGateEvent, ('action', 'outcome', 'summary'), 'g')} AS c, {sql.none} AS p,"
            f" {sql.none} AS x",
            f"FROM {gate} g WHERE g.patient_id = %s AND {_window('g.created_at', bounded)}",  # noqa: S608
            "g.created_at DESC, g.id DESC",
        )
    )
    params += window
    effects = (
        f"SELECT {sql.array}({sql.obj(SideEffectReport, SIDE_EFFECT_FIELDS, 'e')}) FROM {effect} e"  # noqa: S608
        " WHERE e.checkin_id = k.id"
    )
    parts.append(
        _limited(
            index + 1,
            f"k.id, k.recorded_at AS at, {sql.no_text} AS type, k.notes AS why, {sql.no_id} AS user_id,"
            f" {sql.obj(SymptomCheckIn, CHECKIN_FIELDS, 'k')} AS c, ({effects}) AS p, {sql.none} AS x",
            f"FROM {checkin} k WHERE k.patient_id = %s AND k.deleted_at IS NULL"  # noqa: S608
            f" AND {_window('k.recorded_at', bounded)}",
            "k.recorded_at DESC, k.id DESC",
        )
    )
    params += window
    sent, failed, cancelled = ReminderStatus.SENT.value, ReminderStatus.FAILED.value, ReminderStatus.CANCELLED.value
    parts.append(
        _limited(
            index + 2,
            f"r.id, CASE WHEN r.status = '{sent}' THEN r.sent_at ELSE r.updated_at END AS at, {sql.no_text} AS type,"
            f" {sql.no_text} AS why, {sql.no_id} AS user_id, {sql.obj(Reminder, REMINDER_FIELDS, 'r')} AS c,"
            f" {sql.none} AS p,"
            f" {sql.none} AS x",
            f"FROM {reminder} r WHERE r.patient_id = %s AND ((r.status = '{sent}'"  # noqa: S608
            f" AND {_window('r.sent_at', bounded)}) OR (r.status IN ('{failed}', '{cancelled}')"
            f" AND {_window('r.updated_at', bounded)}))",
            "r.updated_at DESC, r.id DESC",
        )
    )
    params += ["patient", "since", *(["until"] if bounded else []), "since", *(["until"] if bounded else []), "limit"]
    # Not an entry: the patient's first check-in, how far back the record goes (older windows to offer).
    parts.append(
        f"SELECT {index + 3} AS src, {sql.no_id} AS id, MIN(k.recorded_at) AS at, {sql.no_text} AS type,"  # noqa: S608
        f" {sql.no_text} AS why, {sql.no_id} AS user_id, {sql.none} AS c, {sql.none} AS p, {sql.none} AS x,"
        f" 1 AS pos FROM {checkin} k WHERE k.patient_id = %s AND k.deleted_at IS NULL"
    )
    params.append("patient")
    union = " UNION ALL ".join(parts)
    users = User._meta.db_table
    statement = (
        f"SELECT t.*, u.first_name, u.last_name, u.username FROM ({union}) t"  # noqa: S608
        f" LEFT JOIN {users} u ON u.id = t.user_id ORDER BY t.src, t.pos"
    )
    return statement, tuple(params)
