"""The house's shape, checked: apps import one way (the worker uses maintenance, never the
reverse), no module circles inside the_flip.apps, and the pipeline stays plain Python."""

import grimp
import pytest


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("the_flip", include_external_packages=True)


def test_maintenance_never_imports_the_worker(graph):
    chains = graph.find_shortest_chains(
        importer="the_flip.apps.maintenance", imported="the_flip.apps.worker"
    )
    assert not chains, f"maintenance reaches the worker through {sorted(chains)}"


def test_no_import_circles_between_app_modules(graph):
    modules = sorted(m for m in graph.modules if m.startswith("the_flip.apps."))
    circles = set()
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported.startswith("the_flip.apps.") and graph.chain_exists(
                importer=imported, imported=module
            ):
                circles.add(tuple(sorted((module, imported))))
    assert not circles, f"modules that import each other (directly or around a loop): {circles}"


def test_the_media_pipeline_imports_no_django(graph):
    chains = graph.find_shortest_chains(importer="the_flip.media", imported="django")
    assert not chains, f"the_flip.media reaches Django through {sorted(chains)}"
