from octreport.cli import main

main()
