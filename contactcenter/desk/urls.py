from django.urls import path

from contactcenter.desk import views

desk_patterns = ([path("", views.desk_index, name="index")], "desk")
supervisor_patterns = ([path("", views.supervisor_index, name="index")], "supervisor")
