"""Keys for people (issue 23): each gateway key's rules, the limits they set, and what each key used."""
