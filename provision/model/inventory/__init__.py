"""The inventory as data: hosts, groups, the admin tree and the selection language."""
