"""The ``hoichan`` command: serve, migrate, create-hospital, create-user, seed-demo, synth-ct."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable

import uvloop
from pydantic import ValidationError
from pydicom.uid import generate_uid
from sqlalchemy import select

from app import demo, startup
from app.config import ConfigError, Settings, load_settings
from app.db import migrate
from app.db.engine import create_engine, session_factory
from app.db.models import Hospital
from app.errors import ApiError
from app.pacs.ingest import UID
from app.pacs.models import DicomStudy
from app.pacs.synth import Patient, store_series

DEMO_SLICES = 200


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    # Alembic would answer an unknown revision (a newer code's) or a database it cannot reach
    # with a traceback; both are said in one line first.
    startup.database_revision(settings)
    if args.revision.startswith("-") or args.down:
        migrate.downgrade(settings.database_url, args.revision)
    else:
        migrate.upgrade(settings.database_url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


SHUTDOWN_TIMEOUT_S = 10.0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from hoichan.server import create_app

    startup.check_schema(settings)
    startup.check_frontend()
    sockets = startup.listen_http(settings.host, settings.port)
    _log_to_stderr()
    # /healthz reads the schema revision through Alembic, which would log every probe.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # uvloop: the SFU forwards every packet through the loop (docs/performance.md,
    # "Per-packet path": 5-8 % less CPU than asyncio's own).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        # After the drain (signaling/node.py) nothing long-lived is left to wait for.
        runner.run(startup.serve(
            create_app(settings), sockets, SHUTDOWN_TIMEOUT_S,
            lambda urls: print(f"Hoichan serving on {', '.join(urls)}", flush=True)))
    return 0


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> str:
    from app.api.people import UserIn, create_user

    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine).begin() as session:
            hospital_id = await session.scalar(
                select(Hospital.id).where(Hospital.code == args.hospital))
            if hospital_id is None:
                raise ApiError(422, f"no hospital with code {args.hospital}", field="hospital")
            # Validated as the API validates its JSON, so the CLI accepts what the API does.
            body = UserIn.model_validate_json(json.dumps({
                "email": args.email, "name": args.name or args.email.split("@")[0],
                "password": password, "roles": args.role, "hospital_id": hospital_id}))
            user = await create_user(session, body, actor=None, client_addr="cli")
            return f"created user {user.id} {user.email} ({', '.join(user.roles)})"
    finally:
        await engine.dispose()


async def _create_hospital(settings: Settings, args: argparse.Namespace) -> str:
    from app.api.people import HospitalIn, create_hospital

    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine).begin() as session:
            parent_id = None
            if args.parent:
                parent_id = await session.scalar(
                    select(Hospital.id).where(Hospital.code == args.parent))
                if parent_id is None:
                    raise ApiError(422, f"no hospital with code {args.parent}", field="parent")
            body = HospitalIn.model_validate_json(json.dumps({
                "code": args.code, "name": args.name, "tier": args.tier,
                "parent_id": parent_id}))
            hospital = await create_hospital(session, body, actor=None, client_addr="cli")
            return f"created hospital {hospital.id} {hospital.code} ({hospital.tier.value})"
    finally:
        await engine.dispose()


def _report(action: Callable[[], str]) -> int:
    """Run a CLI action; bad input is printed as the API would say it, exit status 2."""
    try:
        print(action())
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            print(f"error: {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return 2
    except ApiError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    return 0


def cmd_create_user(settings: Settings, args: argparse.Namespace) -> int:
    password = os.environ.get("HOICHAN_NEW_PASSWORD") or getpass.getpass("password: ")
    return _report(lambda: asyncio.run(_create_user(settings, args, password)))


def cmd_create_hospital(settings: Settings, args: argparse.Namespace) -> int:
    return _report(lambda: asyncio.run(_create_hospital(settings, args)))


async def _seed(settings: Settings, password: str) -> list[demo.DemoLogin] | None:
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine).begin() as session:
            return await demo.seed(session, password)
    finally:
        await engine.dispose()


async def _synth(settings: Settings, study_uid: str, slices: int, patient: Patient,
                 only_if_missing: bool) -> int:
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        if only_if_missing:
            async with sessions() as session:
                if await session.scalar(select(DicomStudy.id).where(
                        DicomStudy.study_instance_uid == study_uid)):
                    return 0
        return await store_series(sessions, settings.data_dir, study_uid, slices, patient)
    finally:
        await engine.dispose()


def cmd_synth_ct(settings: Settings, args: argparse.Namespace) -> int:
    study_uid = args.study_uid or generate_uid()
    if not UID.match(study_uid) or len(study_uid) > 64:
        print(f"error: not a valid UID: {study_uid}", file=sys.stderr)
        return 2
    patient = Patient(args.patient_id, args.patient_name, args.birth_date, args.sex)
    stored = asyncio.run(_synth(settings, study_uid, args.slices, patient, False))
    print(f"stored {stored} CT slices of study {study_uid}")
    return 0


def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    password, generated = demo.demo_password()
    logins = asyncio.run(_seed(settings, password))
    # The demo case's CT goes into the store once, also on a database seeded earlier.
    stored = asyncio.run(_synth(settings, demo.DEMO_STUDY_UID, DEMO_SLICES, Patient(), True))
    if stored:
        print(f"demo CT study stored: {stored} slices")
    if logins is None:
        path = settings.data_dir / demo.CREDENTIALS_FILE
        print("demo already seeded" + (f"; logins in {path}" if path.exists() else ""))
        return 0
    path = demo.write_credentials(settings.data_dir, password, logins)
    print(f"demo seeded: {len(logins)} accounts, password "
          f"{'generated and ' if generated else ''}written to {path}")
    for login in logins[:3]:
        print(f"  {login.role:<12} {login.email}")
    print(f"  ... every doctor: doctor.<hospital code>@{demo.EMAIL_DOMAIN}")
    print(f"  password: {password}")
    return 0


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def cmd_media_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Started by `hoichan serve` (HOICHAN_MEDIA_WORKERS), not by hand."""
    from signaling.cluster.workers import run_worker

    if not settings.redis_url:
        print("a media worker needs HOICHAN_REDIS_URL", file=sys.stderr)
        return 2
    _log_to_stderr()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_worker(settings))
    return 0


Command = Callable[[Settings, argparse.Namespace], int]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hoichan", description=__doc__)
    p.add_argument("--debug", action="store_true",
                   help="show the traceback of a configuration or start-up error too")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the platform (HOICHAN_HOST:HOICHAN_PORT)")
    s.set_defaults(func=cmd_serve)
    w = sub.add_parser("media-worker", help="an SFU worker process (`serve` starts them when "
                       "HOICHAN_MEDIA_WORKERS is set)")
    w.set_defaults(func=cmd_media_worker)
    m = sub.add_parser("migrate", help="bring the database schema to a revision")
    m.add_argument("revision", nargs="?", default="head")
    m.add_argument("--down", action="store_true", help="downgrade to the revision")
    m.set_defaults(func=cmd_migrate)
    u = sub.add_parser("create-user", help="create a user (password from HOICHAN_NEW_PASSWORD "
                       "or asked)")
    u.add_argument("email")
    u.add_argument("--role", action="append", required=True,
                   choices=["admin", "coordinator", "doctor"])
    u.add_argument("--hospital", required=True, help="hospital code")
    u.add_argument("--name", default="")
    u.set_defaults(func=cmd_create_user)
    h = sub.add_parser("create-hospital", help="add a hospital to the network")
    h.add_argument("code")
    h.add_argument("name")
    h.add_argument("--tier", required=True,
                   choices=["central", "provincial", "district", "commune"])
    h.add_argument("--parent", default="", help="code of the supporting upper-level hospital")
    h.set_defaults(func=cmd_create_hospital)
    c = sub.add_parser("synth-ct", help="generate a synthetic chest CT series into the store")
    c.add_argument("--slices", type=int, default=DEMO_SLICES, choices=range(1, 2001),
                   metavar="N")
    c.add_argument("--study-uid", default="")
    c.add_argument("--patient-id", default="SYNTH-0001")
    c.add_argument("--patient-name", default="SYNTHETIC^PATIENT")
    c.add_argument("--birth-date", default="19700101")
    c.add_argument("--sex", default="O", choices=["M", "F", "O"])
    c.set_defaults(func=cmd_synth_ct)
    d = sub.add_parser("seed-demo", help="create the demo network and consultation once")
    d.set_defaults(func=cmd_seed_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit status 2 for a setting that cannot be used, 1 for a start that cannot succeed;
    either is one line on stderr unless --debug."""
    args = parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(load_settings(), args)
    except ConfigError as exc:
        if args.debug:
            raise
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except startup.StartupError as exc:
        if args.debug:
            raise
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
