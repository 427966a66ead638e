"""
The providers FakeOutlit knows: names, setup modes, credentials, steps, models.

The twelve public providers follow the provider table of the Outlit
integrations API. Their capability answers are encoded once, when the catalogue
is built, so that the capabilities route costs a dictionary look-up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal, final

import attrs

SetupMode = Literal["browser", "direct"]


@final
@attrs.frozen
class CredentialField:
    """
    One credential a direct provider needs in ``config``.

    :param key: the camelCase name in ``config``
    :param label: the label a form would show
    :param secret: whether the value is a secret
    :param choices: the accepted values, when the field is an enumeration
    """

    key: str
    label: str
    secret: bool = True
    choices: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """
        Answer the field as the capabilities route shows it.
        """
        return {"key": self.key, "label": self.label, "secret": self.secret}


@final
@attrs.frozen
class SetupStep:
    """
    A follow-up step run through ``POST /api/integrations/setup-step``.

    :param id: the step token, as sent in the request's ``step``
    :param label: what the step configures
    :param required: whether the provider needs it before data flows
    """

    id: str
    label: str
    required: bool


@final
@attrs.frozen
class ProviderSpec:
    """
    Everything FakeOutlit knows about one provider.

    :param id: the public provider id
    :param name: the display name
    :param category: the category shown by the list and sync-status routes
    :param mode: ``"browser"`` for a connect session, ``"direct"`` for credentials
    :param credential_type: the capability's ``credentialType``
    :param fields: the credentials a direct connection requires
    :param steps: the follow-up steps the setup-step route accepts
    :param models: the sync models a new connection starts with
    :param cli_name: the name the Outlit CLI uses, when it differs from the id
    """

    id: str
    name: str
    category: str
    mode: SetupMode
    credential_type: str
    fields: tuple[CredentialField, ...] = ()
    steps: tuple[SetupStep, ...] = ()
    models: tuple[str, ...] = ()
    cli_name: str = ""

    @property
    def cli(self) -> str:
        """
        The CLI name, which is the id unless the provider has an alias.
        """
        return self.cli_name or self.id

    def step(self, step_id: str) -> SetupStep | None:
        """
        Find a follow-up step by its token.

        :param step_id: the token from the request
        """
        return next((step for step in self.steps if step.id == step_id), None)

    def capability(self) -> dict[str, Any]:
        """
        Answer the provider's capability object, as the capabilities route shows it.
        """
        browser = self.mode == "browser"
        return {
            "cliName": self.cli,
            "providerId": self.id,
            "setupMode": "browser_session" if browser else "direct_api_key",
            "authType": "oauth" if browser else "api_key",
            "credentialType": self.credential_type,
            "connectSupported": True,
            "requiredFields": [field.to_json() for field in self.fields],
            "commands": self._commands(),
            "postConnectSteps": [
                {
                    "id": step.id,
                    "label": step.label,
                    "required": step.required,
                    "supported": True,
                    "command": f"outlit integrations setup {self.cli} {step.id}",
                }
                for step in self.steps
            ],
        }

    def _commands(self) -> list[str]:
        commands = [
            f"outlit integrations setup {self.cli}",
            f"outlit integrations status {self.cli}",
        ]
        commands.extend(
            f"outlit integrations setup {self.cli} {step.id}" for step in self.steps
        )
        return commands


def _api_key(label: str = "API Key") -> CredentialField:
    return CredentialField("apiKey", label)


_MAPPINGS: Final = SetupStep(
    "mappings", "Configure CRM pipeline and stage mappings", required=True
)


def _webhooks(name: str, *, required: bool) -> SetupStep:
    return SetupStep("webhooks", f"Configure {name} webhooks", required=required)


PUBLIC_PROVIDERS: Final[tuple[ProviderSpec, ...]] = (
    ProviderSpec(
        "hubspot",
        "HubSpot",
        "crm",
        "browser",
        "oauth",
        steps=(_MAPPINGS,),
        models=("HubSpotCompany", "HubSpotContact", "HubSpotDeal"),
    ),
    ProviderSpec(
        "attio",
        "Attio",
        "crm",
        "browser",
        "oauth",
        steps=(_MAPPINGS,),
        models=("AttioCompany", "AttioPerson", "AttioDeal"),
    ),
    ProviderSpec(
        "slack",
        "Slack",
        "communication",
        "browser",
        "oauth",
        models=("SlackChannel", "SlackMessage"),
    ),
    ProviderSpec(
        "fireflies",
        "Fireflies.ai",
        "calls",
        "direct",
        "api_key",
        fields=(_api_key(),),
        steps=(_webhooks("Fireflies", required=False),),
        models=("FirefliesTranscript",),
    ),
    ProviderSpec(
        "granola",
        "Granola",
        "calls",
        "direct",
        "api_key",
        fields=(_api_key(),),
        models=("GranolaNote",),
    ),
    ProviderSpec(
        "google-calendar",
        "Google Calendar",
        "calendar",
        "browser",
        "oauth",
        models=("GoogleCalendarEvent",),
    ),
    ProviderSpec(
        "google-mail",
        "Gmail",
        "communication",
        "browser",
        "oauth",
        models=("GmailThread", "GmailMessage"),
        cli_name="gmail",
    ),
    ProviderSpec(
        "posthog",
        "PostHog",
        "analytics",
        "direct",
        "api_key",
        fields=(
            _api_key("Personal API Key"),
            CredentialField("region", "Region", secret=False, choices=("us", "eu")),
            CredentialField("projectId", "Project ID", secret=False),
        ),
        models=("PostHogPerson", "PostHogEvent"),
    ),
    ProviderSpec(
        "stripe",
        "Stripe",
        "billing",
        "direct",
        "api_key",
        fields=(_api_key("Restricted API Key"),),
        steps=(_webhooks("Stripe", required=True),),
        models=("StripeCustomer", "StripeSubscription", "StripeInvoice"),
    ),
    ProviderSpec(
        "supabase",
        "Supabase Auth",
        "analytics",
        "direct",
        "service_role_key",
        fields=(
            CredentialField("projectUrl", "Project URL", secret=False),
            CredentialField("serviceRoleKey", "Service Role Key"),
        ),
        models=("SupabaseUser",),
    ),
    ProviderSpec(
        "clerk",
        "Clerk",
        "analytics",
        "direct",
        "secret_key",
        fields=(CredentialField("secretKey", "Secret Key"),),
        models=("ClerkUser", "ClerkOrganization"),
    ),
    ProviderSpec(
        "pylon",
        "Pylon",
        "support",
        "direct",
        "api_token",
        fields=(CredentialField("apiToken", "API Token"),),
        steps=(_webhooks("Pylon", required=True),),
        models=("PylonIssue", "PylonAccount"),
    ),
)


def extra_provider(provider_id: str, mode: SetupMode) -> ProviderSpec:
    """
    Describe a provider the public table does not list yet.

    :param provider_id: the new provider's id
    :param mode: how it connects
    """
    if mode not in ("browser", "direct"):
        raise ValueError(f"setup mode must be 'browser' or 'direct', not {mode!r}")
    name = provider_id.replace("-", " ").replace("_", " ").title()
    direct = mode == "direct"
    return ProviderSpec(
        provider_id,
        name,
        "other",
        mode,
        "api_key" if direct else "oauth",
        fields=(_api_key(),) if direct else (),
        models=(name.replace(" ", "") + "Record",),
    )


def _encode(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@final
class Catalog:
    """
    The providers of one FakeOutlit, in list order, with their answers encoded.

    :param extra: providers beyond the public twelve, id to setup mode
    """

    __slots__ = (
        "_aliases",
        "_envelopes",
        "_providers",
        "capabilities",
        "capabilities_json",
        "enum_message",
    )

    def __init__(self, extra: Mapping[str, SetupMode] | None = None) -> None:
        specs = list(PUBLIC_PROVIDERS)
        known = {spec.id for spec in specs}
        for provider_id, mode in (extra or {}).items():
            if provider_id in known:
                raise ValueError(f"{provider_id!r} is already a public provider")
            specs.append(extra_provider(provider_id, mode))

        self._providers = {spec.id: spec for spec in specs}
        self._aliases = {spec.cli: spec.id for spec in specs if spec.cli != spec.id}
        self.capabilities = {spec.id: spec.capability() for spec in specs}
        self.capabilities_json = _encode(self.capabilities)
        self._envelopes = {
            provider_id: _encode({"provider": capability})
            for provider_id, capability in self.capabilities.items()
        }
        expected = " | ".join(f"'{spec.id}'" for spec in specs)
        self.enum_message = f"Invalid enum value. Expected {expected}, received "

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(self._providers.values())

    def __len__(self) -> int:
        return len(self._providers)

    def get(self, provider_id: str) -> ProviderSpec | None:
        """
        Find a provider by its public id.

        :param provider_id: the id, exactly as the API spells it
        """
        return self._providers.get(provider_id)

    def resolve(self, name: str) -> ProviderSpec | None:
        """
        Find a provider by its public id or its CLI alias (``gmail``).

        :param name: the id or alias
        """
        return self._providers.get(self._aliases.get(name, name))

    def envelope_json(self, provider_id: str) -> bytes:
        """
        Answer the encoded ``{"provider": Capability}`` body of one provider.

        :param provider_id: a known provider id
        """
        return self._envelopes[provider_id]

    def require(self, provider_id: str) -> ProviderSpec:
        """
        Find a provider by id, for the Python API, which refuses unknown ids.

        :param provider_id: the public id
        :raises ValueError: if no provider has that id
        """
        spec = self._providers.get(provider_id)
        if spec is None:
            raise ValueError(f"unknown provider {provider_id!r}")
        return spec
