"""/healthz reports the database, Redis and a live Celery worker, each for real."""


def test_healthy_when_database_redis_and_a_worker_answer(client, db, celery_worker_process):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "redis": "ok", "celery": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


def test_redis_down_is_503_naming_redis(client, db, settings, tmp_path):
    settings.REDIS_URL = f"unix://{tmp_path / 'nobody-listens.sock'}"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["redis"] == "down"
    # With the broker unreachable no worker can be confirmed.
    assert body["celery"] == "down"
    assert body["down"] == ["celery", "redis"]
    assert "No such file or directory" in body["errors"]["redis"]


def test_no_worker_is_503_naming_celery(client, db):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert (body["database"], body["redis"], body["celery"]) == ("ok", "ok", "down")
    assert body["errors"] == {"celery": "no Celery worker answered"}


def test_healthz_only_answers_get(client, db):
    assert client.post("/healthz").status_code == 405
