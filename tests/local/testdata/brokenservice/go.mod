module brewline.test/brokenservice

go 1.22
