"""The Pipedrive JSON panel: a customer's invoices and account inside Pipedrive's organization and deal
pages, answered from the connector's own records (auth.py: the JWT Pipedrive signs each request with;
services.py: the panel's data; views.py + urls.py: the endpoint; schema.json: the panel's declared
structure, uploaded to Developer Hub)."""
