"""Device profiles as data: one YAML file per device (`<name>.yaml` here), read by `profiles.py`."""
