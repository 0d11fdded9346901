"""Every partitioning of the asset graph, in one place.

A delivery is the unit of intake: one dynamic partition `client_id/delivery_id` per delivery,
added by the `client_uploads` sensor. Never a partition per file.

A run of the intake assets covers one delivery or a range of them: a run per tiny delivery costs
a process start-up and its imports (seconds) for a second of work, so the sensor groups a tick's
new deliveries of a client into one partition-range run, and backfills from the UI are cut into
runs of the same size.
"""

import warnings
from collections.abc import Iterator
from itertools import groupby
from operator import attrgetter

import dagster as dg

from annobase.keys import DeliveryRef
from annobase.settings import load_settings

deliveries_partitions = dg.DynamicPartitionsDefinition(name="deliveries")

# Each run pays a process start-up, its imports and the GX check's import (~10 s of CPU): with 100
# deliveries per run, 1,000 arriving at once made 13 runs that thrashed 2 cores (290 s); with 250,
# 5 runs (192 s). A run that fails is retried whole, which only rewrites its partitions.
DELIVERIES_PER_RUN = 250
deliveries_backfill_policy = dg.BackfillPolicy.multi_run(max_partitions_per_run=DELIVERIES_PER_RUN)
# `backfill_policy` is a beta parameter of `@asset` in Dagster 1.13, used knowingly: its warning
# would otherwise be repeated by every process that loads the code location.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def deliveries_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> list[DeliveryRef]:
    """The deliveries a run covers, in partition order: one, or the range it was launched for."""
    return [DeliveryRef.from_partition_key(key) for key in context.partition_keys]


def deliveries_by_client(context: dg.AssetExecutionContext) -> Iterator[tuple[str, list[DeliveryRef]]]:
    """The run's deliveries as (client_id, its deliveries), for work done once per client and run."""
    for client_id, refs in groupby(deliveries_of(context), key=attrgetter("client_id")):
        yield client_id, list(refs)


# One per annotation batch, added by `annotation_batches` when it cuts a delivery into batches.
batches_partitions = dg.DynamicPartitionsDefinition(name="batches")

# One per industry of the configuration: a new industry is a new partition, not new code.
industries_partitions = dg.StaticPartitionsDefinition(sorted(load_settings().industries))
