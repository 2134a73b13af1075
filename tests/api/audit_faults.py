"""A trail that cannot be written: the database made to fail the audit inserts of one
action, as a full disk would, and made well again."""

from __future__ import annotations

from sqlalchemy import text

from app.db.engine import create_engine


async def refuse_audit_inserts_of(world, action: str) -> None:
    """Make the database fail the audit insert of one action, as a full disk would."""
    engine = create_engine(world.settings.database_url)
    async with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            await conn.execute(text(
                f"CREATE TRIGGER test_audit_fails BEFORE INSERT ON audit_events "
                f"WHEN NEW.action = '{action}' BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            await conn.execute(text(
                "CREATE FUNCTION test_audit_fails() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN IF NEW.action = '{action}' THEN RAISE EXCEPTION 'disk full'; "
                "END IF; RETURN NEW; END $$"))
            await conn.execute(text(
                "CREATE TRIGGER test_audit_fails BEFORE INSERT ON audit_events "
                "FOR EACH ROW EXECUTE FUNCTION test_audit_fails()"))
    await engine.dispose()


async def drop_audit_failure(world) -> None:
    engine = create_engine(world.settings.database_url)
    async with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            await conn.execute(text("DROP TRIGGER test_audit_fails"))
        else:
            await conn.execute(text("DROP TRIGGER test_audit_fails ON audit_events"))
            await conn.execute(text("DROP FUNCTION test_audit_fails()"))
    await engine.dispose()
