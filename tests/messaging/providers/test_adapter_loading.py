"""Adapters are imported on first use; concurrent first uses must all find theirs."""

import sys
import threading
from types import SimpleNamespace

import messaging.providers as providers


def test_concurrent_first_uses_of_a_fresh_process_all_find_the_adapter(monkeypatch):
    # A fresh process: nothing imported or registered yet (restored afterwards).
    modules = {f"messaging.providers.{name}" for name in providers._ADAPTER_MODULES}
    for name in modules:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(providers, "_ADAPTERS", {})
    monkeypatch.setattr(providers, "_loaded", False)
    barrier, found, errors = threading.Barrier(8), [], []

    def first_request():
        barrier.wait()
        try:
            found.append(type(providers.adapter_for(SimpleNamespace(kind="twilio"))).__name__)
        except Exception as exc:  # the old race answered "No adapter ... yet"
            errors.append(str(exc))

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(found) == 8 and len(set(found)) == 1
