"""Decisions: every LLM (or rules) trace, and one trace in full with what it caused.

Trace text is hostile input (an LLM can be prompted by market data to emit markup), so all
of it is rendered as plain text or code, never as markdown or HTML, and scrubbed of secrets.
"""

from __future__ import annotations

import json

import streamlit as st

from db.queries_trading import trace_detail, trace_filters, traces
from views._common import current_session, no_session_notice, read_db, scrub


def _linked_trace() -> int | None:
    """``?trace=ID`` from a link on the Trades page (ignored unless it is a number)."""
    value = st.query_params.get("trace")
    return int(value) if value and value.isdigit() else None


st.header("Decisions")
info = current_session()
if info is None:
    no_session_notice()
    st.stop()

with read_db() as db:
    options = trace_filters(db, info.id)
cols = st.columns([2, 2, 1, 1])
statuses = cols[0].multiselect("Status", options["statuses"], key="dec_status")
engines = cols[1].multiselect("Engine", options["engines"], key="dec_engine")
errors_only = cols[2].toggle("Problems only", key="dec_errors")
limit = cols[3].selectbox("Rows", [50, 200, 1000], index=1, key="dec_limit")
with read_db() as db:
    frame = traces(db, info.id, statuses=statuses, engines=engines, errors_only=errors_only,
                   limit=limit)
if frame.empty:
    st.info("No decisions match.")
    st.stop()
frame["errors"] = frame["errors"].map(scrub)
st.dataframe(frame, hide_index=True,
             column_config={"cost": st.column_config.NumberColumn(format="%.4f"),
                            "latency_ms": st.column_config.NumberColumn(format="%.0f")})

times = dict(zip(frame["id"], frame["created_at"], strict=True))
options = frame["id"].tolist()
linked = _linked_trace()
if linked is not None and linked not in options:
    options.insert(0, linked)  # a link from Trades may point past the filter or the limit
trace_id = st.selectbox(
    "Trace", options, index=options.index(linked) if linked is not None else 0,
    format_func=lambda tid: f"#{tid} · {times[tid]:%Y-%m-%d %H:%M:%S}" if tid in times
    else f"#{tid}",
    key="dec_trace",
)
with read_db() as db:
    detail = trace_detail(db, int(trace_id))
if detail is None:
    st.warning("That trace is gone.")
    st.stop()


def _pretty(text: str | None) -> str:
    """Indented JSON when it parses; the raw text otherwise (still shown as text)."""
    if not text:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


st.text(
    f"#{detail['id']} · {detail['created_at']:%Y-%m-%d %H:%M:%S} UTC · {detail['engine']} "
    f"{detail['model'] or ''} · status {detail['status']} · cost {detail['cost']:.4f} · "
    f"{detail['latency_ms']:.0f} ms · tokens {detail['tokens_in']}/{detail['tokens_out']}"
)
if detail["errors"]:
    st.code(scrub("\n".join(map(str, detail["errors"]))), language=None)
tabs = st.tabs(["Decision", "Execution", "Prompt", "Tool calls", "Raw response", "Caused"])
tabs[0].code(scrub(_pretty(detail["decision_json"])) or "(no decision)", language="json")
tabs[1].code(scrub(detail["execution_result"]) or "(nothing executed)", language=None)
if detail["prompt"]:
    tabs[2].code(scrub(detail["prompt"]), language=None, wrap_lines=True)
else:
    tabs[2].info("The rules engine sends no prompt: it decides on the indicators its "
                 "decision's summary shows." if detail["engine"] == "rules"
                 else "No prompt was sent.")
tabs[3].code(scrub(json.dumps(detail["tool_calls"] or [], indent=2, ensure_ascii=False)),
             language="json")
with tabs[4]:
    answers = detail["answers"] or []  # an LLM asked again keeps every answer, in order
    if not answers:
        st.code(scrub(detail["raw_response"]) or "(none)", language=None, wrap_lines=True)
    for number, answer in enumerate(answers, 1):
        st.caption(f"Answer {number} of {len(answers)}")
        if answer.get("errors"):
            st.code(scrub("\n".join(map(str, answer["errors"]))), language=None)
        st.code(scrub(answer.get("raw_response")) or "(none)", language=None,
                wrap_lines=True)
with tabs[5]:
    st.caption("Plans opened or revised by this decision")
    st.dataframe(detail["plans"], hide_index=True)
    st.caption("Orders it sent")
    st.dataframe(detail["orders"], hide_index=True)
    st.caption("Fills it caused")
    st.dataframe(detail["trades"], hide_index=True)
