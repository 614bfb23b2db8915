"""The Order Header Change feed (Coupa's change requests): its whole logic, kinds/__init__.py says where."""
