"""The order service's docs log in at the user service: "Authorize" must point there."""

from pathlib import Path

from order_service.core.config import OrderSettings
from order_service.main import create_app


def test_the_order_service_docs_send_logins_to_the_user_service(tmp_path: Path) -> None:
    settings = OrderSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}",
        internal_api_token="x" * 24,
        public_token_url="https://users.example.com/auth/token",
    )
    schema = create_app(settings).openapi()
    (flow,) = [
        scheme["flows"]["password"]
        for scheme in schema["components"]["securitySchemes"].values()
        if "password" in scheme.get("flows", {})
    ]
    assert flow["tokenUrl"] == "https://users.example.com/auth/token"
    assert "/orders" in schema["paths"]
