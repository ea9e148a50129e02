metadata(description="E-purse purchase (PBOC/T-Union shape): card and PSAM commands, no policy",
         version="0.1.0")
package("epurse")
