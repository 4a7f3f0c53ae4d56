"""Sign-in and the consoles speak English and Spanish; the language switch persists."""

from django.urls import reverse


def test_the_sign_in_page_is_english_by_default(client, db):
    html = client.get(reverse("login")).content.decode()
    assert '<html lang="en">' in html
    assert "Sign in" in html
    assert "Password" in html


def test_the_sign_in_page_follows_the_browser_language(client, db):
    html = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9").content.decode()
    assert '<html lang="es">' in html
    assert "Iniciar sesión" in html
    assert "Contraseña" in html


def test_the_language_switch_sets_spanish_for_the_following_pages(client_for, agent1):
    client = client_for(agent1)
    response = client.post(reverse("set_language"), {"language": "es", "next": "/desk/"})
    assert response.status_code == 302
    assert response.url == "/desk/"
    html = client.get("/desk/").content.decode()
    assert "Escritorio del agente" in html
    assert "Cerrar sesión" in html


def test_a_wrong_password_is_explained_in_spanish(client, agent1):
    response = client.post(
        reverse("login"),
        {"username": "agent1", "password": "mal"},
        HTTP_ACCEPT_LANGUAGE="es",
    )
    assert "Por favor, introduzca un nombre de usuario y clave correctos" in (
        response.content.decode()
    )
