"""Seed 000's dialect (`POST /api/vanna/v2/chat_sse`): named events whose data repeats the name.

    event: start     data: {"event": "start", "timestamp": …}
    event: chunk     data: {"event": "chunk", "text": …}
    event: sql       data: {"event": "sql", "sql": …}
    event: csv       data: {"event": "csv", "url": …}
    event: complete  data: {"event": "complete", "answer": …, "sql": …, "csv_url": …}
    event: error     data: {"event": "error", "error": …}

Every `data:` carries an `"event"` key because the seed's Python client indexes
`data['event']` on every data line. Divergences, each harmless to the seed's clients (they
act on `chunk` and `complete` and skip the rest): `start` also names the run and the
conversation; `table` (the SQL result preview) is an extra event the seed did not have; the
error's shape was never documented, so it is `{"event", "error": message, "code", "retryable"}`.
Status, sources, follow-ups and metadata have no place in this format and are dropped. No
`retry:` preamble and no `[DONE]`: the seed's fetch loop parses every `data:` line as JSON.
"""

from __future__ import annotations

from ssechat.dialects import TEXT_MARK, TextTemplate, Wire, frame, register_dialect
from ssechat.events import Complete, Csv, Delta, Error, Event, Sql, Start, Table


class VannaRenderer:
    __slots__ = ()
    wire = Wire(retry=False)

    @staticmethod
    def render_text(seq: int, text: str) -> bytes:
        return _CHUNK.fill(text) if text else b""

    def render(self, seq: int, event: Event) -> bytes:
        if isinstance(event, Start):
            return _named(
                "start",
                timestamp=event.created_at.isoformat(),
                conversation_id=event.conversation_id,
                run_id=event.run_id,
            )
        if isinstance(event, Delta):
            return self.render_text(seq, event.text)
        if isinstance(event, Sql):
            return _named("sql", sql=event.sql)
        if isinstance(event, Csv):
            return _named("csv", url=event.url)
        if isinstance(event, Table):
            return _named(
                "table",
                columns=event.columns,
                rows=event.rows,
                row_count=event.row_count,
                truncated=event.truncated,
            )
        if isinstance(event, Complete):
            return _named("complete", answer=event.text, sql=event.sql, csv_url=event.csv_url)
        if isinstance(event, Error):
            return _named("error", error=event.message, code=event.code, retryable=event.retryable)
        return b""


def _named(name: str, **fields: object) -> bytes:
    return frame({"event": name, **fields}, event=name)


_CHUNK = TextTemplate(_named("chunk", text=TEXT_MARK))

register_dialect("vanna")(VannaRenderer)
