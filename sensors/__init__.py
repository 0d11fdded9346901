"""Sensors: what reacts to objects written by the outside world, and to finished runs."""

import dagster as dg

from sensors.annotation_exports import annotation_exports
from sensors.client_uploads import client_uploads
from sensors.delivery_completion import delivery_completion
from sensors.label_studio_exports import label_studio_exports
from sensors.reconciliation import reconciliation

defs = dg.Definitions(
    sensors=[client_uploads, annotation_exports, delivery_completion, reconciliation, label_studio_exports]
)
