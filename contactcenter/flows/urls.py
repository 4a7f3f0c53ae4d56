from django.urls import path

from contactcenter.flows import api, demo_api, flows_api

studio_patterns = [
    path("v2/Flows", flows_api.flows, name="flows"),
    # Before <flow_sid>: "Validate" is not a flow.
    path("v2/Flows/Validate", flows_api.flow_validate, name="flow-validate"),
    path("v2/Flows/<str:flow_sid>", flows_api.flow_detail, name="flow"),
    path("v2/Flows/<str:flow_sid>/Revisions", flows_api.flow_revisions, name="flow-revisions"),
    path(
        "v2/Flows/<str:flow_sid>/Revisions/<int:revision>",
        flows_api.flow_revision,
        name="flow-revision",
    ),
    path("v2/Flows/<str:flow_sid>/Executions", api.executions, name="flow-executions"),
    path(
        "v2/Flows/<str:flow_sid>/Executions/<str:execution_sid>",
        api.execution_detail,
        name="flow-execution",
    ),
    path(
        "v2/Flows/<str:flow_sid>/Executions/<str:execution_sid>/Steps",
        api.execution_steps,
        name="flow-execution-steps",
    ),
    path(
        "v2/Flows/<str:flow_sid>/Executions/<str:execution_sid>/Context",
        api.execution_context,
        name="flow-execution-context",
    ),
]

demo_patterns = [
    path("appointments/<str:document>/", demo_api.appointment_detail, name="demo-appointment"),
]
