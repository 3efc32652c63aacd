"""The API's answers and request bodies as pydantic models, one module per resource.

The routes declare these as their response models, so the OpenAPI document describes every
answer and the database columns are not the API: a new column stays internal until a model
here names it.
"""
