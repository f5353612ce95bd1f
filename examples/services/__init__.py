"""Small real HTTP services: a Coolify-compatible API and the sample app's backend."""
