"""Static reports for agency staff: a dataset directory, a page per dataset, data dictionaries and data.json."""
