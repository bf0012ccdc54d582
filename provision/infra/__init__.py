"""Infrastructure: the only modules that talk to the outside world's libraries.

`runner` is the only importer of ansible_runner, `store` of SQLAlchemy, `ssh` of
paramiko, `crypto` of cryptography, `render` of jinja2; `yamlfile` reads YAML
with the line of every value, `atomic` writes files whole or not at all.
Infrastructure imports only the domain (`provision.model`) and `provision.errors`.
"""
