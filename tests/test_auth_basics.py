"""Two signed-in clients in one test each see their own user (no state leaks between requests)."""
from tests.factories import make_user


def test_two_clients_keep_their_own_identity(login_as):
    alice = login_as(make_user("alice@example.com"))
    bob = login_as(make_user("bob@example.com"))
    assert "alice@example.com" in alice.get("/queue").get_data(as_text=True)
    assert "bob@example.com" in bob.get("/queue").get_data(as_text=True)
    assert "bob@example.com" not in alice.get("/queue").get_data(as_text=True)
