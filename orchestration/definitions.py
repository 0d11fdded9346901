"""The code location: only merges what each package builds."""

import dagster as dg

import assets.definitions
import orchestration.jobs
import quality_checks
import resources
import sensors

defs = dg.Definitions.merge(
    assets.definitions.defs, quality_checks.defs, sensors.defs, orchestration.jobs.jobs_defs, resources.defs
)
