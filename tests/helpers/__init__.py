"""What test modules share: sample data, workspaces, the lab's scenarios.

A test module never imports another test module (test_*.py) nor a conftest:
importing a test module runs its collection-time code a second time and makes
its tests' fixtures and markers part of the importer; a conftest is pytest's to
load. Whatever two modules need lives here.
"""
