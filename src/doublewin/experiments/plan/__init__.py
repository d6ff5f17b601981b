"""The experiment file to the grid of stage specs: the file read and checked (experiment, fields,
pretrainings, ticket_files, landscapes) and expanded into jobs (grid)."""
