from greencredit.cli import main

main()
