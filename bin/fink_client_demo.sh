#!/usr/bin/env bash
# The demo: installs fink-client, starts the embedded Kafka broker, replays the bundled real
# alerts in Fink's wire format (Rubin/LSST in their own topic first, then ZTF in two topics),
# consumes them with AlertConsumer over SASL/SCRAM, prints one table per survey, and stops
# the broker.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/bootstrap.sh
exec .venv/bin/finkctl demo "$@"
