"""The Purchase Order feed (Coupa's Purchase Order export): its whole logic, kinds/__init__.py says where."""
