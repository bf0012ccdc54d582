"""The Bangladesh administrative tree: divisions, districts, upazilas, unions."""
