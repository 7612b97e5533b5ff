"""Task entry point: thin by design; the work lives in autopot.tasklib.sp_calc."""

from autopot.tasklib.sp_calc import main

if __name__ == "__main__":
    main()
