"""Task entry point: thin by design; the work lives in autopot.simulate.taskmain."""

from autopot.simulate.taskmain import main

if __name__ == "__main__":
    main("elasticity")
