"""
``demo``: a bulk onboarding against an embedded sandbox, with no key and no network.

A few organisations connect all twelve providers between them. Simulated
people open each browser link and, after a seeded random delay, approve it,
deny it, or walk away until the session expires; every run has at least one
of each. Direct providers connect with made-up credentials. Every session is
watched through one monitor, then the first sync of each connection, as
``onboard`` does.
"""

from __future__ import annotations

import argparse
import random
import secrets
from typing import Final, Literal

import aiohttp
import anyio
import attrs
from anyio.abc import TaskGroup

from .._client import AsyncOutlit
from .._models import BrowserSession, Capability, Provider
from ..testing import FakeOutlit, SyncScript
from ._exit import CommandError, Exit
from ._onboard import Job, Onboarding, summarize
from ._progress import CONNECTION_STATES, SYNC_STATES, Tally, open_view
from ._render import Mode, Output

__all__ = ("demo",)

Decision = Literal["approve", "deny", "abandon"]

ORG_NAMES: Final = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "soylent",
    "stark",
    "wonka",
    "tyrell",
    "vandelay",
)
MAX_ORGS: Final = 100
_SAMPLE_VALUES: Final = {
    "region": "us",
    "projectId": "12345",
    "projectUrl": "https://demo.supabase.co",
}
_POLL_INTERVAL: Final = 0.4
_DELAYS: Final = (0.5, 6.0)
_DECISIONS: Final[tuple[Decision, ...]] = ("approve", "deny", "abandon")
_WEIGHTS: Final = (0.7, 0.15, 0.15)
_WATCH_TIMEOUT: Final = 60.0


@attrs.frozen
class Person:
    """
    What the person behind one connect link does, and after how long.
    """

    decision: Decision
    delay: float


@attrs.frozen
class Plan:
    """
    Who connects what, what each person does, and which model fails to sync.

    Among the browser connections, at least one person approves, one denies
    and one abandons.
    """

    connections: tuple[tuple[str, Provider], ...]
    people: tuple[Person, ...]
    failing_models: tuple[str, ...]


def make_plan(orgs: int, rng: random.Random, *, speed: float) -> Plan:
    """
    Deal the twelve providers over ``orgs`` organisations, then add extras.
    """
    rounds = len(ORG_NAMES)
    names = [
        ORG_NAMES[i % rounds] + (str(i // rounds + 1) if i >= rounds else "")
        for i in range(orgs)
    ]
    providers = list(Provider)
    rng.shuffle(providers)
    dealt: dict[str, list[Provider]] = {name: [] for name in names}
    for i, provider in enumerate(providers):
        dealt[names[i % orgs]].append(provider)
    for name in names:
        spare = [p for p in Provider if p not in dealt[name]]
        dealt[name].extend(rng.sample(spare, min(len(spare), rng.randint(1, 2))))

    connections = tuple((name, p) for name in names for p in dealt[name])
    people = [_person(rng, speed) for _ in connections]
    # Every browser provider is dealt once, so there are enough to pick from.
    browser = [i for i, (_, p) in enumerate(connections) if p.connects_in_browser]
    chosen = rng.sample(browser, len(_DECISIONS))
    for index, decision in zip(chosen, _DECISIONS, strict=True):
        people[index] = attrs.evolve(people[index], decision=decision)
    failing = rng.choice(connections)[1]
    # An idle FakeOutlit's catalogue names each provider's sync models.
    model = FakeOutlit().default_models(failing.value)[0]
    return Plan(connections, tuple(people), (model,))


def _person(rng: random.Random, speed: float) -> Person:
    decision = rng.choices(_DECISIONS, _WEIGHTS)[0]
    return Person(decision, rng.uniform(*_DELAYS) / speed)


def _config(capability: Capability | None) -> dict[str, str] | None:
    if capability is None or capability.connects_in_browser:
        return None
    return {
        field.key: _SAMPLE_VALUES.get(field.key, f"demo_{secrets.token_hex(6)}")
        for field in capability.required_fields
    }


async def demo(args: argparse.Namespace, out: Output) -> Exit:
    """
    Run the demo to its end; exit status 0 whatever the simulated people chose.
    """
    if not 1 <= args.orgs <= MAX_ORGS:
        raise CommandError(f"--orgs must be between 1 and {MAX_ORGS}")
    if not args.speed > 0:
        raise CommandError("--speed must be a positive number")
    seed = args.seed if args.seed is not None else random.randrange(10_000)
    plan = make_plan(args.orgs, random.Random(seed), speed=args.speed)
    keys = {name: f"ok_demo_{secrets.token_hex(8)}" for name, _ in plan.connections}

    first, *others = keys.values()
    fake = FakeOutlit(
        first,
        record=False,
        sync_script=SyncScript(succeed_after_polls=3, fail_models=plan.failing_models),
    )
    async with fake:
        for key in others:
            fake.add_organization(key)
        await _run(args, out, fake, plan, keys, seed)
    return Exit.OK


async def _run(
    args: argparse.Namespace,
    out: Output,
    fake: FakeOutlit,
    plan: Plan,
    keys: dict[str, str],
    seed: int,
) -> None:
    interval = _POLL_INTERVAL / args.speed
    async with (
        AsyncOutlit(next(iter(keys.values())), base_url=fake.url) as client,
        aiohttp.ClientSession() as browser,
    ):
        capabilities = await client.integrations.capabilities()
        clients = {name: client.with_options(api_key=key) for name, key in keys.items()}
        jobs = [
            Job(
                index,
                index + 1,
                org,
                provider.value,
                _config(capabilities.get(provider.value)),
                key=keys[org],
                client=clients[org],
            )
            for index, (org, provider) in enumerate(plan.connections)
        ]
        connections = Tally("connections", CONNECTION_STATES)
        syncs = Tally("syncs", SYNC_STATES)
        title = (
            f"Demo: {len(keys)} organisations, {len(jobs)} integrations, "
            f"sandbox {fake.url}, seed {seed}"
        )
        if out.mode is not Mode.TABLE:
            out.record(
                {
                    "event": "demo",
                    "url": fake.url,
                    "organizations": len(keys),
                    "connections": len(jobs),
                    "seed": seed,
                    "speed": args.speed,
                }
            )
        with open_view(out, title, [connections, syncs]) as view:
            async with anyio.create_task_group() as people:
                onboarding = Onboarding(
                    jobs,
                    view,
                    connections,
                    syncs,
                    interval=interval,
                    timeout=_WATCH_TIMEOUT,
                    workers=8,
                    on_link=lambda job, session: _start_person(
                        people, browser, fake, session, plan.people[job.index]
                    ),
                )
                await onboarding.run(client)
                people.cancel_scope.cancel()
        summarize(out, jobs, 0)
    if out.mode is Mode.TABLE:
        out.console.print(
            "\nTry your own app against a local Outlit: [bold]outlit-async sandbox[/]"
        )


def _start_person(
    people: TaskGroup,
    browser: aiohttp.ClientSession,
    fake: FakeOutlit,
    session: BrowserSession,
    person: Person,
) -> None:
    people.start_soon(_act, browser, fake, session, person)


async def _act(
    browser: aiohttp.ClientSession,
    fake: FakeOutlit,
    session: BrowserSession,
    person: Person,
) -> None:
    await anyio.sleep(person.delay)
    if person.decision == "abandon":
        if fake.session(session.session_id).status == "pending":
            fake.expire_session(session.session_id)
        return
    async with browser.post(f"{session.connect_url}/{person.decision}") as answer:
        await answer.read()
