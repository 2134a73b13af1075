"""The consultation minutes (biên bản hội chẩn): what they hold, who attended, how they are
signed, and the PDF in the Circular 49/2017 form with the hospital's signature."""
