"""What operators see in the Airflow UI: names of mapped task instances.

Light module (imported when the DAG files are parsed): no heavy imports.
"""

from __future__ import annotations

#: ``map_index_template`` of the mapped TaskFlow tasks: the label they set with :func:`label_map_index`.
MAP_LABEL = "{{ map_label }}"


def label_map_index(label: str) -> None:
    """Name the running mapped task instance in the UI (Airflow renders ``MAP_LABEL`` with it).

    Call inside a ``@task(map_index_template=MAP_LABEL)`` function, e.g. with the input product:
    the UI then lists ``smap``, ``era5_land``, ... instead of 0, 1, ...
    """
    from airflow.sdk import get_current_context

    get_current_context()["map_label"] = str(label)
