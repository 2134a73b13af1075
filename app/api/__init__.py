"""The REST API under /api: routes declare their bodies, so validation and OpenAPI agree."""
