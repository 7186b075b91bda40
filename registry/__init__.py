"""The registry's domain services: towns, firms, meters, output figures and API keys.

Services take plain values (keyword-only past two arguments) and raise the errors of
`registry.errors`; nothing here knows about HTTP (the API maps the errors in one place).
"""
