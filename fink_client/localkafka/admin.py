"""Administration of a running embedded broker: topics, SCRAM users, ACLs.

Everything goes through a confluent-kafka ``AdminClient`` on the PLAINTEXT listener,
whose anonymous principal is a super user. Each call waits until the broker reports
the change (a topic with leaders, ACLs listed by the authorizer), so that a test can
use it right away. Failures raise :class:`~fink_client.errors.BrokerError`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from fink_client.errors import BrokerError
from fink_client.localkafka.config import SCRAM_ITERATIONS, admin_client_config


class BrokerAdmin:
    """Admin operations on the broker whose admin listener is ``admin_servers``."""

    def __init__(self, admin_servers: str) -> None:
        from confluent_kafka.admin import AdminClient

        self.client: Any = AdminClient(admin_client_config(admin_servers))

    def create_topic(
        self,
        name: str,
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> str:
        """Create a topic and wait until every partition has a leader; return its name."""
        from confluent_kafka.admin import NewTopic

        admin = self.client
        new = NewTopic(name, num_partitions=partitions, replication_factor=1,
                       config=dict(config or {}))  # fmt: skip
        try:
            admin.create_topics([new], operation_timeout=timeout)[name].result(timeout)
        except Exception as exc:
            raise BrokerError(f"could not create topic '{name}': {exc}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            meta = admin.list_topics(topic=name, timeout=timeout).topics.get(name)
            if (
                meta is not None
                and meta.error is None
                and len(meta.partitions) == partitions
                and all(p.leader >= 0 for p in meta.partitions.values())
            ):
                return name
            time.sleep(0.05)
        raise BrokerError(f"topic '{name}' was created but has no leader after {timeout} s")

    def delete_topic(self, name: str, timeout: float = 30.0) -> None:
        """Delete a topic and wait until the broker no longer lists it."""
        admin = self.client
        try:
            admin.delete_topics([name], operation_timeout=timeout)[name].result(timeout)
        except Exception as exc:
            raise BrokerError(f"could not delete topic '{name}': {exc}") from exc
        deadline = time.monotonic() + timeout
        while name in admin.list_topics(timeout=timeout).topics:
            if time.monotonic() > deadline:
                raise BrokerError(f"topic '{name}' still listed {timeout} s after deletion")
            time.sleep(0.05)

    def upsert_scram(self, name: str, password: str, timeout: float = 30.0) -> None:
        """Create (or change the password of) the SCRAM-SHA-512 credential of ``name``."""
        from confluent_kafka.admin import (
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
        upsert = UserScramCredentialUpsertion(name, info, password.encode())
        try:
            self.client.alter_user_scram_credentials([upsert])[name].result(timeout)
        except Exception as exc:
            raise BrokerError(f"could not add user '{name}': {exc}") from exc

    def allow(
        self,
        user: str,
        topics: Iterable[str] = (),
        groups: Iterable[str] = (),
        prefixed: bool = False,
        operations: Iterable[str] = ("READ", "DESCRIBE"),
        timeout: float = 30.0,
    ) -> None:
        """Grant ``user`` the topic ``operations`` on ``topics`` and READ on ``groups``.

        Names are literal (``"*"`` means every topic or group) or, with ``prefixed=True``,
        prefixes. Returns once the broker's authorizer reports the new ACLs.
        """
        from confluent_kafka.admin import (
            AclBinding,
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        topics, groups = tuple(topics), tuple(groups)  # iterated more than once
        pattern = ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL
        principal = f"User:{user}"
        bindings = []
        for op in operations:
            try:
                operation = AclOperation[op.upper()]
            except KeyError:
                raise BrokerError(f"unknown ACL operation '{op}'") from None
            for topic in topics:
                bindings.append(
                    AclBinding(ResourceType.TOPIC, topic, pattern, principal, "*",
                               operation, AclPermissionType.ALLOW)
                )  # fmt: skip
        for group in groups:
            bindings.append(
                AclBinding(ResourceType.GROUP, group, pattern, principal, "*",
                           AclOperation.READ, AclPermissionType.ALLOW)
            )  # fmt: skip
        if not bindings:
            return
        admin = self.client
        try:
            for fut in admin.create_acls(bindings, request_timeout=timeout).values():
                fut.result(timeout)
        except Exception as exc:
            raise BrokerError(f"could not create ACLs for '{user}': {exc}") from exc
        # The authorizer applies metadata asynchronously: wait until it lists them all.
        # None matches any name and any host (documented by confluent-kafka, whose type
        # hints say str).
        query = AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, principal,  # type: ignore[arg-type]
            None, AclOperation.ANY, AclPermissionType.ANY,  # type: ignore[arg-type]
        )  # fmt: skip
        wanted = {(b.restype, b.name, b.resource_pattern_type, b.operation) for b in bindings}
        deadline = time.monotonic() + timeout
        while True:
            found = admin.describe_acls(query, request_timeout=timeout).result(timeout)
            have = {(b.restype, b.name, b.resource_pattern_type, b.operation) for b in found}
            if wanted <= have:
                return
            if time.monotonic() > deadline:
                raise BrokerError(f"ACLs for '{user}' not visible after {timeout} s")
            time.sleep(0.05)
