"""Every partitioning of the asset graph, in one place.

A delivery is the unit of intake: one dynamic partition `client_id/delivery_id` per delivery,
added by the `client_uploads` sensor. Never a partition per file.
"""

import dagster as dg

from annobase.settings import load_settings

deliveries_partitions = dg.DynamicPartitionsDefinition(name="deliveries")

# One per annotation batch, added by `annotation_batches` when it cuts a delivery into batches.
batches_partitions = dg.DynamicPartitionsDefinition(name="batches")

# One per industry of the configuration: a new industry is a new partition, not new code.
industries_partitions = dg.StaticPartitionsDefinition(sorted(load_settings().industries))
