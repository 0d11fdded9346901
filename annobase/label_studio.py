"""annobase driving a Label Studio server (1.23) through `label-studio-sdk`: a project per batch, its
tasks and media storage, and the finished project's export. Dagster-free: the resource, the asset
and the sensor above call it.

A batch's project is found again by its title (client, delivery, batch number) and the batch id
and tasks version written in its description, so a retried run never opens a second project.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

# Label Studio refuses titles longer than 50 characters
TITLE_CHARS = 50
DESCRIPTION = re.compile(r"^annobase batch (?P<batch_id>\S+) tasks (?P<version>\S+)$", re.MULTILINE)
# what the reviewer filters on in the Data Manager (a task's `meta` is a column there)
REVIEW_META = {"annobase_review": True}


@dataclass(frozen=True)
class MediaStorage:
    """Where Label Studio fetches the media the tasks name (`s3://{bucket}/...`), as it sees it."""

    bucket: str
    endpoint_url: str | None
    region: str | None
    presign_ttl_minutes: int = 60


@dataclass(frozen=True)
class BatchProject:
    batch_id: str
    tasks_version: str
    project_id: int
    url: str


@dataclass(frozen=True)
class ProjectSummary:
    """A project as the project list shows it: enough to tell which batch and whether it may be done."""

    project_id: int
    batch_id: str | None
    tasks_version: str | None
    annotations: int  # submitted, not cancelled, ground truth included
    ground_truth: int


def project_title(client_id: str, delivery_id: str, batch_id: str) -> str:
    """`{client} / {delivery} / b003`, each id cut so the whole stays within Label Studio's limit."""
    number = batch_id.rsplit("-", 1)[-1]
    room = (TITLE_CHARS - len(number) - 6) // 2
    return f"{client_id[:room]} / {delivery_id[:room]} / {number}"


def project_description(batch_id: str, tasks_version: str) -> str:
    return f"annobase batch {batch_id} tasks {tasks_version}"


def wanted_annotations(plan: dict) -> tuple[dict[str, int], set[str]]:
    """From `batch.json`: item_key -> annotators asked for, and the items a reviewer must label."""
    asked = {task["item_key"]: int(task["annotators"]) for task in plan["tasks"]}
    return asked, set(plan.get("review_item_keys") or [])


def item_key_of(data: dict) -> str:
    return f"{data['client_id']}/{data['delivery_id']}/{data['item_id']}"


def unfinished_tasks(export: list[dict], plan: dict) -> list[str]:
    """Why an exported project is not finished yet (empty: finished): every task answered, not
    cancelled, as many times as `batch.json` asks, and every review task with a ground truth."""
    asked, review = wanted_annotations(plan)
    answered: Counter[str] = Counter()
    reviewed: set[str] = set()
    for task in export:
        key = item_key_of(task["data"])
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            if annotation.get("ground_truth"):
                reviewed.add(key)
            else:
                answered[key] += 1
    missing = [f"{key}: {answered[key]}/{n} answers" for key, n in sorted(asked.items()) if answered[key] < n]
    missing += [f"{key}: not reviewed" for key in sorted(review - reviewed)]
    return missing


class LabelStudioProjects:
    """A Label Studio server as annobase uses it; `client` is a `label_studio_sdk.LabelStudio`."""

    def __init__(self, client, base_url: str):
        self.client = client
        self.base_url = base_url.rstrip("/")

    def find(self, title: str, batch_id: str, tasks_version: str) -> int | None:
        """The project already opened for this version of the batch, if a run before got that far."""
        for project in self.client.projects.list(title=title, page_size=100):
            found = DESCRIPTION.search(project.description or "")
            if found and (found["batch_id"], found["version"]) == (batch_id, tasks_version):
                return project.id
        return None

    def open_batch(
        self,
        client_id: str,
        delivery_id: str,
        batch_id: str,
        tasks: list[dict],
        config_xml: str,
        plan: dict,
        media: MediaStorage | None,
    ) -> BatchProject:
        """The batch's project, created with its tasks, per-task overlap, review marks and media
        storage when it does not exist yet; found again when it does."""
        version = plan["tasks_version"]
        title = project_title(client_id, delivery_id, batch_id)
        project_id = self.find(title, batch_id, version)
        if project_id is None:
            project_id = self._create(title, batch_id, tasks, config_xml, plan, media, client_id, delivery_id)
        return BatchProject(batch_id, version, project_id, f"{self.base_url}/projects/{project_id}/data")

    def _create(self, title, batch_id, tasks, config_xml, plan, media, client_id, delivery_id) -> int:
        asked, review = wanted_annotations(plan)
        most = max(asked.values(), default=1)
        project = self.client.projects.create(
            title=title,
            label_config=config_xml,
            # every task starts at the most any task asks for; each task is then set to its own count
            maximum_annotations=most,
            overlap_cohort_percentage=100,
            show_skip_button=True,
        )
        if media is not None:
            # tasks name `s3://` media; Label Studio resolves them through a connected storage and
            # hands the annotator's browser a presigned URL. Never synced: the tasks are imported.
            self.client.import_storage.s3.create(
                project=project.id,
                title=f"{client_id}/{delivery_id} uploads",
                bucket=media.bucket,
                prefix=f"uploads/{client_id}/{delivery_id}/",
                s3endpoint=media.endpoint_url,
                region_name=media.region,
                presign=True,
                presign_ttl=media.presign_ttl_minutes,
                use_blob_urls=True,
            )
        marked = [
            {**task, "meta": {**task.get("meta", {}), **REVIEW_META}}
            if item_key_of(task["data"]) in review
            else task
            for task in tasks
        ]
        imported = self.client.projects.import_tasks(project.id, request=marked, return_task_ids=True)
        for task_id, task in zip(imported.task_ids, marked, strict=True):
            wanted = asked.get(item_key_of(task["data"]), most)
            if wanted != most:
                self.client.tasks.update(str(task_id), overlap=wanted)
        # written last: a project without its description is not found again, so a run that died
        # before this point opens a new one rather than trusting a half-made one
        self.client.projects.update(
            project.id, description=project_description(batch_id, plan["tasks_version"])
        )
        return project.id

    def project_page(self, page: int, page_size: int) -> tuple[list[ProjectSummary], bool]:
        """One page of the project list in id order, with the counts that tell whether a project may
        be finished, and whether pages follow. A page past the end is empty."""
        from label_studio_sdk.core.api_error import ApiError

        try:
            listed = self.client.projects.list(
                ordering="id",
                page=page,
                page_size=page_size,
                # `include` also limits the fields returned: name every one used
                include="id,description,total_annotations_number,ground_truth_number",
            )
        except ApiError as error:
            if error.status_code == 404:  # Django's paginator: no such page
                return [], False
            raise
        found = []
        for project in listed.items or []:
            described = DESCRIPTION.search(project.description or "")
            found.append(
                ProjectSummary(
                    project.id,
                    described["batch_id"] if described else None,
                    described["version"] if described else None,
                    int(project.total_annotations_number or 0),
                    int(project.ground_truth_number or 0),
                )
            )
        return found, len(found) == page_size  # the SDK's pager always claims a next page

    def export(self, project_id: int) -> bytes:
        """Label Studio's own JSON export of every task, annotators as objects with their e-mail
        (an export snapshot with `completed_by` expanded), the snapshot deleted after download."""
        snapshot = self.client.projects.exports.create(
            project_id,
            title="annobase",
            serialization_options={"annotations__completed_by": {"only_id": False}},
            task_filter_options={"only_with_annotations": False},
        )
        try:
            data = b"".join(
                self.client.projects.exports.download(project_id, snapshot.id, export_type="JSON")
            )
        finally:
            self.client.projects.exports.delete(project_id, snapshot.id)
        json.loads(data)  # a truncated download must not become an export
        return data
