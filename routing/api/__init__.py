"""The routing REST API, `/api/v1/routing/...` (see `routing/api/urls.py` for the endpoints).

Like the rest of the engine it never imports `contactcenter` or `messaging`: people sign in
with Django's own authentication (session or HTTP Basic with username and password) and the
permission rules are the engine's selectors (`can_configure`, `can_supervise`,
`worker_for_actor`, ...).
"""
