"""Small helpers shared by the engines (gan/, style/) without making them import each other."""
