"""The published API descriptions the test fakes are held to, copied into the repository
(sources and licences: README.md here)."""
from pathlib import Path

CONTRACTS_DIR = Path(__file__).resolve().parent

DISCOURSE_OPENAPI = CONTRACTS_DIR / "discourse-openapi.yml"
TWILIO_API_V2010 = CONTRACTS_DIR / "twilio_api_v2010.json"
