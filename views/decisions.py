"""Decisions: every LLM (or rules) trace, and one trace in full with what it caused.

Trace text is hostile input (an LLM can be prompted by market data to emit markup), so all
of it is rendered as plain text or code, never as markdown or HTML, and scrubbed of secrets.
"""

from __future__ import annotations

import json

import streamlit as st

from db.queries_trading import trace_detail, trace_filters, traces
from views import _trace_words as trace_words
from views._common import read_db, scrub, session_or_stop
from views._scorecard import show_scorecard
from views._tables import table


def _linked_trace() -> int | None:
    """``?trace=ID`` from a link on the Trades page (ignored unless it is a number)."""
    value = st.query_params.get("trace")
    return int(value) if value and value.isdigit() else None


st.header("Decisions")
info = session_or_stop()

# scoring reads every candle and fill of the run: only when asked, so the traces stay quick
if st.toggle("Scorecard: what the decisions' calls did after them, and what they cost",
             key="dec_scorecard"):
    show_scorecard(info)

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
table(frame)

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
if trace_id is None:  # the options are never empty; a selectbox is typed as maybe None
    st.stop()
with read_db() as db:
    detail = trace_detail(db, int(trace_id))
if detail is None:
    st.warning("That trace is gone.")
    st.stop()


def _in_words(read: trace_words.Read, nothing: str) -> None:
    """A table of the actions and a line about the rest; the stored JSON behind an expander."""
    if read.line:
        st.text(scrub(read.line))
    if not read.rows.empty:
        table(read.rows.map(lambda v: scrub(v) if isinstance(v, str) else v))
    elif not read.line:
        st.text(nothing if not read.raw else "No action in words: see the raw text below.")
    if read.raw:
        with st.expander("Raw JSON"):
            st.code(scrub(read.raw), language="json", wrap_lines=True)


def _cache_line(detail: dict) -> str:
    """The prompt cache's share of the input tokens, which the cost prices apart."""
    parts = [f"{label} {detail[key]}" for label, key in
             (("cache write", "cache_write_tokens"), ("cache read", "cache_read_tokens"))
             if detail[key]]
    return f" ({', '.join(parts)})" if parts else ""


st.text(
    f"#{detail['id']} · {detail['created_at']:%Y-%m-%d %H:%M:%S} UTC · {detail['engine']} "
    f"{detail['model'] or ''} · status {detail['status']} · cost {detail['cost']:.4f} · "
    f"{detail['latency_ms']:.0f} ms · tokens {detail['tokens_in']}/{detail['tokens_out']}"
    + _cache_line(detail)
)
if detail["provider"]:  # an LLM's answer: what a rerun must match to be the same question
    # plain text: the model version is whatever the server said, never markdown to render
    st.text(
        f"provider {detail['provider']} · model version {detail['model_version'] or '?'} · "
        f"temperature {'none sent' if detail['temperature'] is None else detail['temperature']}"
        f" · prompt {detail['prompt_version'] or '?'} · request "
        f"{(detail['request_hash'] or '?')[:12]} · price "
        f"{'local (free)' if detail['price_source'] == 'local' else detail['price_source']}"
    )
if detail["errors"]:
    st.code(scrub("\n".join(map(str, detail["errors"]))), language=None)
tabs = st.tabs(["Decision", "Execution", "Prompt", "Tool calls", "Raw response", "Caused"])
with tabs[0]:
    _in_words(trace_words.decision(detail["decision_json"]), "(no decision)")
    if detail["shadow_decision"]:
        st.caption("The rules engine's shadow decision on the same context: recorded and "
                   "scored, never executed")
        _in_words(trace_words.decision(detail["shadow_decision"]), "(no decision)")
with tabs[1]:
    _in_words(trace_words.execution(detail["execution_result"]), "(nothing executed)")
if detail["prompt"]:
    tabs[2].code(scrub(detail["prompt"]), language=None, wrap_lines=True)
else:
    tabs[2].info("The rules engine sends no prompt: it decides on the indicators its "
                 "decision's summary shows." if detail["engine"] == "rules"
                 else "No prompt was sent.")
tabs[3].code(scrub(json.dumps(detail["tool_calls"], indent=2, ensure_ascii=False)),
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
    table(detail["plans"])
    st.caption("Orders it sent")
    table(detail["orders"])
    st.caption("Fills it caused")
    table(detail["trades"])
