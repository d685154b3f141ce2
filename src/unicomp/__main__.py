from unicomp.cli import main

main()
