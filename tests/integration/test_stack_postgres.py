"""SQLModel round trips on the stack's Postgres and on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import JSON, Column
from sqlmodel import Field, Session, SQLModel, create_engine, select


class StackRoundTrip(SQLModel, table=True):
    __tablename__ = "stack_round_trip"

    id: int | None = Field(default=None, primary_key=True)
    device_id: str = Field(index=True)
    seq: int
    ts: datetime
    values: dict[str, float] = Field(sa_column=Column(JSON))


def round_trip(url: str) -> None:
    engine = create_engine(url)
    try:
        StackRoundTrip.__table__.create(engine)  # type: ignore[attr-defined]
        ts = datetime(2026, 11, 22, 10, 0, 0, 123000, tzinfo=UTC)
        with Session(engine) as session:
            for seq in range(3):
                session.add(
                    StackRoundTrip(device_id="press-07", seq=seq, ts=ts, values={"t": 71.2 + seq})
                )
            session.commit()
        with Session(engine) as session:
            rows = session.exec(select(StackRoundTrip).order_by(StackRoundTrip.seq)).all()
        assert [r.seq for r in rows] == [0, 1, 2]
        assert rows[2].values == {"t": 73.2}
        assert rows[0].device_id == "press-07"
        assert rows[0].ts.replace(tzinfo=UTC) == ts
    finally:
        engine.dispose()


def test_sqlmodel_round_trip_postgres(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+psycopg://")
    round_trip(pg_url)


def test_sqlmodel_round_trip_sqlite(tmp_path: Path) -> None:
    round_trip(f"sqlite:///{tmp_path / 'edge.db'}")


def test_pg_url_is_a_fresh_database(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            tables = conn.exec_driver_sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).scalar_one()
        assert tables == 0
    finally:
        engine.dispose()
