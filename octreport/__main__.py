from octreport.cli import entry

entry()
