"""voicectl: run the platform locally, manage its data services, and simulate calls."""

from __future__ import annotations

import argparse
import sys

from core.settings import state_dir
from voicectl.data_services import DataServices
from voicectl.procs import ManagedProcess, ServiceError
from voicectl.stack import LocalStack, components
from voicectl.supervise import Supervisor


def cmd_services(args: argparse.Namespace) -> int:
    services = DataServices.from_env(state_dir())
    if args.action == "down":
        stopped = services.stop_recorded()
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        return 0
    if args.action == "status":
        postgres = ("postgres",) if services.ferretdb_backend == "postgresql" else ()
        for name in (*postgres, "ferretdb", "minio"):
            pid = ManagedProcess(name, [], services.run_dir).running_pid()
            print(f"{name}: {f'running (pid {pid})' if pid else 'stopped'}")
        return 0
    env = services.start()
    for key, value in env.items():
        print(f"{key}={value}")
    if args.detach:
        # Leave them running; `voicectl services down` stops them via their pid files.
        for proc in services.processes:
            proc.proc = None
        return 0
    print("data services up; Ctrl-C stops them")
    try:
        return Supervisor(services.processes).run()
    finally:
        services.stop()


def cmd_run(args: argparse.Namespace) -> int:
    stack = LocalStack(state_dir())
    only = set(args.only.split(",")) if args.only else None
    print(f"state folder: {stack.state}")
    stack.start(only)
    p = stack.ports
    print("\nThe platform is running:")
    print(f"  web UI and API   http://127.0.0.1:{p.backend}/   (API docs: /docs, health: /health)")
    print(f"  voice server     http://127.0.0.1:{p.voice_server}/")
    print(f"  logs             {stack.data.run_dir}/*.log")
    print("  demo login       demo@example.com / demo-password-123")
    print("Press Ctrl-C to stop everything. A crashed process is restarted (with back-off).")
    try:
        return Supervisor([*stack.data.processes, *stack.processes]).run()
    finally:
        print("\nstopping …")
        stack.stop()


def cmd_simulate(args: argparse.Namespace) -> int:
    from voicectl import simulate  # heavy imports (pipecat) only for this command

    return simulate.main(args)


def cmd_smoke(args: argparse.Namespace) -> int:
    from voicectl import smoke  # imports the speech clients only for this command

    return smoke.main()


def cmd_test_agent(args: argparse.Namespace) -> int:
    from voicectl import test_agent  # heavy imports (pipecat) only for this command

    return test_agent.main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicectl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    svc = sub.add_parser("services", help="FerretDB + MinIO: build once, then start/stop")
    svc.add_argument("action", choices=["up", "down", "status"])
    svc.add_argument("--detach", action="store_true", help="leave them running in the background")
    svc.set_defaults(func=cmd_services)
    run = sub.add_parser("run", help="run the whole platform locally until Ctrl-C")
    run.add_argument("--only", help="comma-separated subset of: " + ",".join(c.name for c in components()))
    run.set_defaults(func=cmd_run)
    smoke = sub.add_parser("smoke", help="one chat completion, one synthesis and one decode with the embedded "
                                         "engines: proves they work on this CPU (bootstrap's last step)")
    smoke.set_defaults(func=cmd_smoke)
    sim = sub.add_parser("simulate", help="simulated Twilio/Vobiz calls against the running voice server "
                                          "(a test double of the carrier); reports voice-to-voice latency")
    from voicectl.simulate_args import add_arguments

    add_arguments(sim)
    sim.set_defaults(func=cmd_simulate)
    tests = sub.add_parser("test-agent", help="run an agent test suite (YAML, e.g. data/agent-tests/*.yaml) as "
                                              "simulated calls against the running platform")
    tests.add_argument("suite", help="the suite's YAML file")
    tests.add_argument("--voice-url", help="default: VOICE_SERVER_URL")
    tests.add_argument("--backend-url", help="default: BACKEND_URL")
    tests.add_argument("--agent-id", help="test this agent's current version and store the results with it")
    tests.add_argument("--token", help="with --agent-id: an access token or API key of its organisation")
    tests.set_defaults(func=cmd_test_agent)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
