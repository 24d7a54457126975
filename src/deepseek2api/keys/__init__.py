"""Keys for people: each gateway key's rules, the limits they set, and what each key used."""
